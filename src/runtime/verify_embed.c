/* patch-uwsgi verify: start the interpreter the way uWSGI's python plugin does (the static
   archive linked into the executable) and run the script given as the first argument.
   Builds against Python 2.7 and 3.x headers. */
#include <Python.h>

int main(int argc, char **argv) {
    int failed;
    if (argc < 2) {
        return 64;
    }
    Py_Initialize();
    failed = PyRun_SimpleString(argv[1]);
    Py_Finalize();
    return failed ? 3 : 0;
}
