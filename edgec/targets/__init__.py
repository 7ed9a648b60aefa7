"""Device profiles as data. `edgec devices list` prints them."""

from edgec.targets.profiles import PROFILES, TargetProfile, get_profile, host_profile

__all__ = ["PROFILES", "TargetProfile", "get_profile", "host_profile"]
