"""The data path run in order: building and timing one architecture (`build`), `edgenas compile --arch`
(`compile`), `edgenas compile --latency-ms` (`budget`, which owns the search for a budget) and `edgenas measure`
(`measure_archs`)."""
