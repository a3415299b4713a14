"""The `myserver` command: replace this process with the server executable shipped in the
package, passing the arguments through."""
import os
import sys


def main():
    server = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'bin', 'myserver')
    os.execv(server, [server] + sys.argv[1:])
