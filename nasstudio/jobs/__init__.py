"""Background work: the job model, the runner, and the jobs themselves."""

from nasstudio.jobs.model import JobCancelled, JobEvent, JobHandle, JobState
from nasstudio.jobs.runner import JobRunner
from nasstudio.jobs.sampling import sample_job

__all__ = ["JobCancelled", "JobEvent", "JobHandle", "JobRunner", "JobState", "sample_job"]
