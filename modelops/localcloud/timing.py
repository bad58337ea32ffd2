"""How long the local cloud's own phases take: fast by default, or SageMaker's in proportion.

An endpoint reaches InService here in about a second; on SageMaker creating one takes minutes and a
blue/green update longer. The ``aws`` profile reproduces SageMaker's phases with their usual lengths,
multiplied by a scale (``modelops local up --timing aws --time-scale 0.05``: a 4-minute provisioning
takes 12 s), so that waiters, timeouts and bake logic meet real proportions. Only the service's own
phases are timed so; what the caller asks for (WaitIntervalInSeconds, TerminationWaitInSeconds,
MaximumExecutionTimeoutInSeconds, the container's own start-up) is honoured as given, unscaled, as on
SageMaker.

SageMaker documents no figures for these phases. The ``aws`` figures are inferred from what is usually
seen on real endpoints of CPU instances (creation 4-6 minutes, most of it launching the instance and
pulling the image; a few tens of seconds per traffic shift; a minute or two to retire a fleet or to
delete an endpoint), and from botocore's EndpointInService waiter, which polls every 30 s.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

PROFILES = ("fast", "aws")
BAD_PROFILE = "timing profile {name!r} is not one of: {profiles}"
BAD_SCALE = "time scale {scale} is not a positive number (1: the profile's own durations; 0.05: a twentieth of them)"


@dataclass(frozen=True)
class Timing:
    """Seconds each phase of the service lasts (before the scale applies)."""

    profile: str = "fast"
    scale: float = 1.0
    provision: float = 0.0  # launching an instance, before its container starts (create, green fleet, scale-up)
    traffic_shift: float = 0.0  # moving one share of traffic to green (ActivatingTraffic)
    retire: float = 0.0  # terminating the old fleet at the end of an update (still Updating)
    rollback: float = 1.5  # RollingBack: traffic back to blue and green terminated (a poller sees it)
    delete: float = 0.5  # Deleting, until the endpoint is gone

    def seconds(self, phase: str) -> float:
        """The scaled length of a phase."""
        return float(getattr(self, phase)) * self.scale

    def to_dict(self) -> dict[str, object]:
        return {"profile": self.profile, "scale": self.scale}


FAST = Timing()
AWS = Timing(profile="aws", provision=240.0, traffic_shift=30.0, retire=90.0, rollback=90.0, delete=60.0)


def timing(profile: str = "fast", scale: float = 1.0) -> Timing:
    """The named profile at ``scale`` (ValueError naming what is wrong)."""
    if profile not in PROFILES:
        raise ValueError(BAD_PROFILE.format(name=profile, profiles=", ".join(PROFILES)))
    if not scale > 0 or scale == float("inf"):
        raise ValueError(BAD_SCALE.format(scale=scale))
    return replace(AWS if profile == "aws" else FAST, scale=scale)
