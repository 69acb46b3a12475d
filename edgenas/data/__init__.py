"""The user's data: datasets in the formats edgenas reads (`datasets`), and training a network on them (`train`)."""
