"""The built-in inspectors, one module each, in the order the chain runs them."""
