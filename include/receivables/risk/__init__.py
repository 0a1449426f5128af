"""Risk: classification, roll rates and provisions, credit scores, warnings, the daily digest."""
