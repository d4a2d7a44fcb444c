"""Jobs that chain the sibling packages (train, export, verify): ``pipeline`` is the main job."""
