"""The page kit (gradio): what every tab shares (`common`: CSS, image inputs, errors to messages,
handlers; `controls`, `forms`, `quota_bar`). It imports only the web app's shared modules, never a
feature (tests/test_webapp_layers.py): each tab lives beside its feature's decisions
(rmbg.webapp.remove.tab, .compare.tab, ...), and the page that puts them together is rmbg.webapp.page.
Imported by the tabs and the page, never by `import rmbg` (it imports gradio).

Each form's values are one dataclass (forms.py, the Video tab's in rmbg.webapp.video.forms) whose
fields name the endpoint's parameters; the tabs build their inputs from those fields.
"""
