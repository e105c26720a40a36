"""The web shell: layout, navigation, i18n, formatting and the helpers every page renders with.

A page lives in its domain's ``views.py`` and reads like this::

    router = APIRouter(include_in_schema=False)

    @router.get("/debtors", response_class=HTMLResponse)
    def debtor_list(
        viewer: Annotated[Viewer, viewer_with("debtors:read")], session: SessionDep
    ) -> HTMLResponse:
        page = repository.debtors_page(session, principal=viewer.principal, ...)
        return render(viewer, "debtors/list.html", {"page": page}, active_nav="debtors")

``viewer_with(permission)`` wraps ``identity.dependencies.require_page``: anonymous visitors are
sent to ``/login``, a role without the permission gets the 403 page. Forms that change
something add ``dependencies=[Depends(csrf_protect)]`` and carry
``<input type="hidden" name="csrf_token" value="{{ csrf }}">``; after a change, answer with
``redirect(path, request=..., message=Flash("catalog.key", params={...}))``.

Templates live in ``web/templates`` (autoescaped; import macros ``with context``); every text
is a key of ``web/i18n/zh_CN.json`` and ``web/i18n/en.json`` shown with ``{{ _("key") }}``;
amounts, dates and instants go through the ``money``, ``day`` and ``moment`` filters.
"""
