"""Customer segmentation: behaviour features, RFM, clusters, personas, CLV, propensity."""
