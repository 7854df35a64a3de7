"""actor-nats: a NATS server written in Python, built as an actor system.

The import package maps the repository's top folders (actors/, protocol/, store/, config/) as
sub-packages; this module only holds version facts shared by all of them.
"""

__version__ = "0.1.0"

# The nats-server release whose observable behaviour we match. Clients read `version` from INFO
# to gate features (nats.py uses the named CONSUMER.CREATE form only from 2.9), so INFO reports
# this, and the startup log names both.
NATS_VERSION = "2.15.1"
