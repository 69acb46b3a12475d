"""The deployable artifact: its manifest (`manifest`, the one writer and checked reader), the C header
(`header`), the report (`report`), running it from Python (`load`), and TVM's runtime libraries for another
machine (`runtime_libs`)."""
