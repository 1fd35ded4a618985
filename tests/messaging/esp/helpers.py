import random


class FakeSleep:
    """Records the delays asked for instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def quick(**extra):
    """Adapter options for tests: no real sleeping, deterministic jitter."""
    sleep = FakeSleep()
    return sleep, {"sleep": sleep, "rng": random.Random(7), **extra}
