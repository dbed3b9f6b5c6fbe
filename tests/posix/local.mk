# tests/posix/ - included by tests/Makefile.am; paths are relative to tests/.
TESTS += posix/run.sh
EXTRA_DIST += posix/run.sh
