"""`make bench`: every benchmark, one after the other."""

from bench import (
    api,
    bigio,
    browser,
    browser_floor,
    compare,
    context_fit,
    embedded,
    engines,
    history,
    knowledge,
    memory,
    proxy,
    routing,
    send_floor,
    stats,
    streaming,
    suites,
    trees,
)

if __name__ == "__main__":
    streaming.main()
    send_floor.main()
    api.main()
    proxy.main()
    compare.main()
    stats.main()
    routing.main()
    history.main()
    trees.main()
    browser.main()
    browser_floor.main()
    suites.main()
    embedded.main()
    knowledge.main()
    engines.main()
    context_fit.main()
    memory.main()
    bigio.main()
