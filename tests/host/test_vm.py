"""A fresh Debian 12 VM (qemu, software emulation, systemd), deployed over SSH as a sudo
user (omero_database + omero_web), then rebooted for real: after boot, with no deploy,
the login page is served. Slow under emulation (everything runs 10-15x slower), so it is
one scenario that counts."""

import time

import pytest

from .checks import login_page
from .testhosts import VirtualMachine, deploy, host_data, wait_for, write_inventory


@pytest.fixture(scope="module")
def vm(tmp_path_factory, secrets_dir):
    machine = VirtualMachine("vm", "127.0.0.1")
    try:
        started = time.monotonic()
        machine.create()
        print(f"VM boot to SSH: {time.monotonic() - started:.0f} s")
        inventory = write_inventory(tmp_path_factory.mktemp("vm") / "vm.py",
                                    {"omero_database": [machine], "omero_web": [machine]},
                                    {machine.name: host_data(machine, secrets_dir)})
        started = time.monotonic()
        deploy(inventory, machine, timeout=3600)
        print(f"VM deploy: {time.monotonic() - started:.0f} s")
        yield machine
    finally:
        machine.destroy()


def test_served_after_deploy_and_after_a_real_reboot(vm):
    url = f"http://127.0.0.1:{vm.http_port}"
    login_page(url)
    boot_id = vm.run("cat /proc/sys/kernel/random/boot_id").stdout
    vm.run("systemctl reboot", check=False)
    started = time.monotonic()
    wait_for(lambda: vm.run("cat /proc/sys/kernel/random/boot_id", check=False).stdout not in ("", boot_id),
             "the VM to come back from its reboot", 600, interval=3)
    wait_for(lambda: login_page(url), "the login page after the reboot", 600, interval=3)
    print(f"VM reboot to login page: {time.monotonic() - started:.0f} s")
    for unit in ("postgresql@15-main.service", "omero-web.service", "nginx.service"):
        assert vm.run(f"systemctl is-active {unit}").stdout.strip() == "active", unit
