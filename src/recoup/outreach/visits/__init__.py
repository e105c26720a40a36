"""Daily field visit lists grouped by city and district, ordered into a route."""
