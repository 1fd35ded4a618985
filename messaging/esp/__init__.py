"""ESP adapters: one interface (base.EspAdapter) over the sandbox and real ESPs.

Use `registry.get_adapter(provider, **config)`; see base.py for the values that go in and
come out.
"""
