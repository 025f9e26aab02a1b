"""Vector-store adapters. Each module imports its database SDK lazily."""
