"""Analysis across runs: the `run_leaderboard` asset (`nexa analyze` in the UI) and the sensor that refreshes it."""
