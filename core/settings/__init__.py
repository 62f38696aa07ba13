"""What a run is asked to do: the training configuration and its bounds, config files and
recipes as read and written, and the stage plan of step training.
"""
