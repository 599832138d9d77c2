"""Raw data: the contract, the synthetic audio-streaming platform and the importers."""
