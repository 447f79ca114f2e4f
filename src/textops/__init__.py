"""textops: keep a transformers text classifier good over time.

Importing the package changes nothing in the process; the entry points call `textops.core.env.set_offline_env()`.
"""

__version__ = "0.1.0"
