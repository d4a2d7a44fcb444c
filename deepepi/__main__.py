"""`python -m deepepi ...`: the same CLI as the `deepepi` command (and what `torchrun -m deepepi` starts)."""

from deepepi.cli import main

if __name__ == "__main__":
    main()
