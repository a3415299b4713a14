# patch-uwsgi verify: import extension modules and say, line by line, what worked.
# Runs in the build interpreter and in the embedding executable; Python 2.7 and 3.6+.
import os
import sys


def say(line):
    sys.stdout.write(line.replace('\n', ' ') + '\n')
    sys.stdout.flush()


say('version %d.%d.%d' % tuple(sys.version_info[:3]))
# The program really running (a console script or wrapper may have exec'd it).
say('program ' + os.path.realpath('/proc/self/exe'))
say('builtin ' + ' '.join(sorted(sys.builtin_module_names)))
# encodings is imported at every start and never frozen: where the standard library came from.
say('stdlib ' + (getattr(sys.modules.get('encodings'), '__file__', None) or 'unknown'))
wanted = os.environ.get('PATCH_UWSGI_VERIFY_MODULES')
if wanted is None:
    found = set()
    for folder in sys.path:
        if os.path.basename(folder.rstrip('/')) != 'lib-dynload':
            continue
        say('dynload ' + folder)
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            if entry.endswith('.so') and not entry.startswith('.'):
                found.add(entry.split('.')[0])
    wanted = sorted(found)
else:
    wanted = wanted.split()
for name in wanted:
    # Said first, so a crash inside an import still names the module.
    say('try ' + name)
    try:
        __import__(name)
        say('ok ' + name)
        say('from %s %s' % (name, getattr(sys.modules[name], '__file__', None) or 'built-in'))
    except BaseException:
        error = sys.exc_info()[1]
        say('fail %s %s: %s' % (name, type(error).__name__, error))
