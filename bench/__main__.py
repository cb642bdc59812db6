"""`make bench`: every benchmark, one after the other."""

from bench import (
    api,
    compare,
    embedded,
    engines,
    history,
    knowledge,
    memory,
    proxy,
    routing,
    stats,
    streaming,
    suites,
)

if __name__ == "__main__":
    streaming.main()
    api.main()
    proxy.main()
    compare.main()
    stats.main()
    routing.main()
    history.main()
    suites.main()
    embedded.main()
    knowledge.main()
    engines.main()
    memory.main()
