# Compiled into the server (embed_files) and imported at start (the embedded config's
# shared-import, from the executable's symbols): it needs the project's own package, which
# lives in the environment's site-packages.
import myserver

PACKAGE = myserver.__file__
myserver.started_by_server = True
