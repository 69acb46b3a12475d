"""`python -m edgenas` runs the command line."""
from .cli import main

main()
