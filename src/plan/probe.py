# patch-uwsgi interpreter probe: prints one JSON object. Python 2.7 and 3.6+.
import json
import os
import platform
import sys
try:
    import sysconfig
    get_var = sysconfig.get_config_var
except ImportError:
    from distutils import sysconfig
    get_var = sysconfig.get_config_var

names = ['VERSION', 'Py_ENABLE_SHARED', 'Py_GIL_DISABLED', 'LIBRARY', 'LDLIBRARY', 'LIBDIR', 'LIBPL',
         'LIBS', 'MODLIBS', 'SYSLIBS', 'LINKFORSHARED', 'MULTIARCH', 'INCLUDEPY', 'CONFINCLUDEPY']
config = {}
for name in names:
    value = get_var(name)
    config[name] = None if value is None else str(value)
try:
    libc = os.confstr('CS_GNU_LIBC_VERSION') or ''
except (AttributeError, ValueError, OSError):
    libc = ''
# The files these answers come from, so a cached probe is used only while they are unchanged:
# the sysconfig data module(s) just loaded and the venv's pyvenv.cfg.
depends_on = [os.path.realpath(sys.executable)]
for module_name in sorted(sys.modules):
    module_file = getattr(sys.modules[module_name], '__file__', None)
    if module_name.startswith('_sysconfigdata') and module_file:
        depends_on.append(os.path.realpath(module_file))
depends_on.append(os.path.join(sys.prefix, 'pyvenv.cfg'))
# What `bundle` copies: the extension modules' folder (the one on sys.path, as the interpreter
# itself imports from it; '' when there is none), the standard library, and where a prefix keeps
# its libraries (3.9+: sys.platlibdir).
lib_dynload = ''
for folder in sys.path:
    if os.path.basename(folder.rstrip('/')) == 'lib-dynload' and os.path.isdir(folder):
        lib_dynload = folder
        break
try:
    stdlib = sysconfig.get_paths()['stdlib']
except (AttributeError, KeyError):
    stdlib = ''
# The machine of wheel platform tags (linux_<machine>), derived as installers derive it: a
# 32-bit interpreter on a 64-bit kernel installs i686 (armv8l) wheels.
try:
    machine = __import__('sysconfig').get_platform().split('-', 1)[-1]
except (ImportError, AttributeError):
    machine = platform.machine()
machine = machine.replace('-', '_').replace('.', '_')
if sys.maxsize <= 2 ** 32:
    machine = {'x86_64': 'i686', 'aarch64': 'armv8l'}.get(machine, machine)
base_prefix = getattr(sys, 'real_prefix', None) or getattr(sys, 'base_prefix', None) or sys.prefix
sys.stdout.write(json.dumps({
    'implementation': platform.python_implementation(),
    'version': '%d.%d.%d' % tuple(sys.version_info[:3]),
    'abiflags': getattr(sys, 'abiflags', ''),
    'executable': sys.executable,
    'prefix': os.path.realpath(sys.prefix),
    'base_prefix': os.path.realpath(base_prefix),
    'glibc': libc.split(' ')[1] if libc.startswith('glibc ') else '',
    'builtin_modules': sorted(sys.builtin_module_names),
    'config': config,
    'depends_on': depends_on,
    'lib_dynload': lib_dynload,
    'machine': machine,
    'stdlib': stdlib,
    'platlibdir': getattr(sys, 'platlibdir', 'lib'),
}, sort_keys=True))
