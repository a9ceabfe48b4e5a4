"""Next-basket recommendation for a shop's customers: repeat and explore signals, a learned blend, typed reasons."""
