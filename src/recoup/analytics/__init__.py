"""KPIs: portfolio by bucket, roll rates, cure, recovery, liquidation, promises, forecasts."""
