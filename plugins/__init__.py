"""mia's built-in plugins: ordinary pluggy plugins registered through the public hooks."""
