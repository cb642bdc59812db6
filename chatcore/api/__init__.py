"""HTTP adapters over the services: the seed's REST API, its access guard and its error table."""
