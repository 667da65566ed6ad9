"""Helpers shared by the test suites: compiling C programs, owning the crash sysctls, journald."""
