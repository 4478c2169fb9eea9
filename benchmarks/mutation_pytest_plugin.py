"""pytest plugin for mutation runs (``-p mutation_pytest_plugin``; the stage copies it in).

A mutant is killed as soon as a test fails, so hypothesis need not shrink the failing example
(shrinking a failure of a slow property test can outlast mutmut's time limit and turn a kill
into a "timeout"). Its example database is off, so that an example a previous mutant failed on
is not replayed into the next one, and its timing checks are off, so that a test slowed down by
mutmut's trampoline or by the other worker is not reported as a failure.
"""

from hypothesis import HealthCheck, Phase, settings

settings.register_profile(
    "mutation",
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile("mutation")
