"""The `gfm` command line: one small module per subcommand, wired in main.py."""
