"""One base exception for the project: user-facing messages say what to do."""


class GfmError(Exception):
    """An error the user can act on; the CLI prints its message and exits non-zero."""


class ConfigError(GfmError):
    """The configuration (YAML file or flags) is invalid."""


class ContractError(GfmError):
    """Input data does not satisfy the raw data contract (docs/data_contract.md)."""


class WorkspaceError(GfmError):
    """The workspace is missing a prerequisite or would be overwritten."""
