"""DNS layer: resolver factory, concurrent cached lookups (dnspython only)."""
