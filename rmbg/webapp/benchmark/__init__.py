"""The Benchmark feature: providers scored on a visitor's images (`scoring`), one request from upload
to outcome (`request`), its `report`, blind votes where there is no ground truth (`arena`), its `uploads`
and its tab."""
