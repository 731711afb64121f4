"""One YAML config for every verb: typed sections, `--set` overrides, validation messages."""

from open_autoglm.config.loading import ConfigError, dump_config, load_config, parse_override, validate_config
from open_autoglm.config.schema import Config

__all__ = ["Config", "ConfigError", "dump_config", "load_config", "parse_override", "validate_config"]
