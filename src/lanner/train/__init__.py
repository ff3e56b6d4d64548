"""L2: training and transfer learning from spec files. Filled by the training issue."""
