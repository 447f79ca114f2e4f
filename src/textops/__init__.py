"""textops: keep a transformers text classifier good over time."""

from textops.env import set_offline_env

set_offline_env()

__version__ = "0.1.0"
