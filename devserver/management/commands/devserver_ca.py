"""``manage.py devserver_ca install|uninstall|path``: the local CA of ``runserver --https``.

``path`` prints where the CA's certificate is (making the CA if there is none yet), for a phone,
a Docker image or a tool that needs it (``curl --cacert "$(manage.py devserver_ca path)"``).
``install`` makes browsers and the system trust it (``devserver.tls.trust`` says where);
``uninstall`` takes that back, and with ``--delete`` removes the CA itself (the next
``runserver --https`` makes a new one, to be trusted again).
"""

from __future__ import annotations

import shutil

from django.core.management.base import BaseCommand, CommandError

from devserver import tls
from devserver.tls import trust


class Command(BaseCommand):
    help = "Installs, uninstalls or shows the local certificate authority of runserver --https."

    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["install", "uninstall", "path"])
        parser.add_argument(
            "--delete",
            action="store_true",
            help="With uninstall: also delete the CA (its key and certificate).",
        )

    def handle(self, *args, action, delete=False, **options):
        if delete and action != "uninstall":
            raise CommandError("--delete goes with uninstall only.")
        try:
            if action == "uninstall":
                self.uninstall(delete)
                return
            ca_file, made = tls.ensure_ca()
        except tls.TlsError as exc:
            raise CommandError(str(exc)) from None
        if action == "path":
            self.stdout.write(str(ca_file))
            return
        if made:
            self.stdout.write(f"Made the local CA: {ca_file}")
        steps = trust.install(ca_file)
        self.report(steps)
        if steps and not any(step.done for step in steps):
            raise CommandError("The local CA is not trusted anywhere yet: run the commands above.")

    def uninstall(self, delete: bool) -> None:
        ca_file = tls.ca_dir() / "rootCA.pem"
        if ca_file.exists():
            self.report(trust.uninstall(ca_file))
        else:
            self.stdout.write(f"There is no local CA in {tls.ca_dir()}.")
        if delete and tls.ca_dir().exists():
            shutil.rmtree(tls.ca_dir())
            self.stdout.write(f"Deleted the local CA: {tls.ca_dir()}")

    def report(self, steps: list[trust.Step]) -> None:
        for step in steps:
            self.stdout.write(step.line if step.done else self.style.WARNING(step.line))
