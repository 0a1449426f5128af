"""The quarterly evaluation: KPIs of the collection plan from the warehouse's history."""
