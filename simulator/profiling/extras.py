"""What profile building needs beyond the simulator, and what to tell a user who lacks it."""

MISSING_TORCH = "profile building needs the 'profile' extra: pip install -e '.[profile]'"
