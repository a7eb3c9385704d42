"""The REST door: `POST /api/remove` and the routes (`routes`), `POST /api/video` (`video`), the request and
response types with the OpenAPI document (`types`), and what the routes share (`body`)."""
