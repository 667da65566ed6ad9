"""The program the kernel runs for each crash when core_pattern is ``|coredumpd-helper …``."""
