"""The synthetic Shapes world: scenes, drawing, questions, rewordings and the dataset writer."""
