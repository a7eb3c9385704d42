"""The Video feature: a clip through a provider from the page and REST (`videos`), the clips taken (`clips`),
two providers side by side (`compare`), the memory clips may hold (`room`), the providers checked before a run
(`sides`), and the Video tab with its forms and browser side. What each session keeps is on the app's shelf
(rmbg.webapp.shelf, shared: the App holds it)."""
