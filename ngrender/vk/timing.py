"""Timestamp query pools -> milliseconds per labelled dispatch; timed submissions of labelled dispatches."""
from __future__ import annotations

from typing import Callable

from .compute import compute_barrier
from .device import Device
from .live import Handle, Owner


class TimestampPool(Handle):
    """Brackets up to ``capacity`` GPU sections with timestamps; ``results()`` gives (label, ms) pairs."""

    kind = "query_pool"
    destroy_function = "vkDestroyQueryPool"

    def _create(self, device: Device, capacity: int = 64) -> None:
        vk = device.vk
        self.device, self.capacity = device, capacity
        self._labels: list[str] = []
        self.handle = self.keep(vk.vkCreateQueryPool(device.handle, vk.VkQueryPoolCreateInfo(
            queryType=vk.VK_QUERY_TYPE_TIMESTAMP, queryCount=2 * capacity), None))

    def reset(self, cmd) -> None:
        """Record a reset; call at the start of each command buffer that uses the pool."""
        self.device.vk.vkCmdResetQueryPool(cmd, self.handle, 0, 2 * self.capacity)
        self._labels = []

    def begin(self, cmd, label: str) -> None:
        if len(self._labels) >= self.capacity:
            raise RuntimeError(f"timestamp pool full ({self.capacity} sections)")
        vk = self.device.vk
        vk.vkCmdWriteTimestamp(cmd, vk.VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, self.handle, 2 * len(self._labels))
        self._labels.append(label)

    def end(self, cmd) -> None:
        vk = self.device.vk
        vk.vkCmdWriteTimestamp(cmd, vk.VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, self.handle,
                               2 * len(self._labels) - 1)

    def results(self) -> list[tuple[str, float]]:
        """(label, milliseconds) for every bracketed section, after the submission has completed."""
        vk = self.device.vk
        n = 2 * len(self._labels)
        if n == 0:
            return []
        data = vk.ffi.new(f"uint64_t[{n}]")
        vk.vkGetQueryPoolResults(self.device.handle, self.handle, 0, n, 8 * n, data, 8,
                                 vk.VK_QUERY_RESULT_64_BIT | vk.VK_QUERY_RESULT_WAIT_BIT)
        period_ms = self.device.timestamp_period_ns * 1e-6
        return [(label, (data[2 * i + 1] - data[2 * i]) * period_ms) for i, label in enumerate(self._labels)]


class TimedCommands(Owner):
    """Submits command buffers whose dispatches are each bracketed by timestamps, plus one bracket around the
    whole submission (to check that the per-dispatch times account for it). Without timestamp support the
    dispatches still run; the times come back empty."""

    def _create(self, device: Device, capacity: int = 64) -> None:
        self.device = device
        self.sections = self.whole = None
        if device.timestamps_supported:
            self.sections = self.own(TimestampPool(device, capacity))
            self.whole = self.own(TimestampPool(device, 1))

    def submit(self, record: Callable[["TimedRecording"], None]) -> tuple[list[tuple[str, float]], float]:
        """Record with ``record(recording)``, submit, wait; (label, ms) per dispatch and the submission's ms."""
        def commands(cmd) -> None:
            if self.sections:
                self.sections.reset(cmd)
                self.whole.reset(cmd)
                self.whole.begin(cmd, "submission")
            record(TimedRecording(self, cmd))
            if self.sections:
                self.whole.end(cmd)

        self.device.submit(commands)
        if not self.sections:
            return [], 0.0
        return self.sections.results(), self.whole.results()[0][1]


class TimedRecording:
    """One command buffer being recorded: ``dispatch`` brackets a pipeline's dispatch and ends with a barrier."""

    def __init__(self, commands: TimedCommands, cmd) -> None:
        self.commands, self.cmd = commands, cmd

    def dispatch(self, label: str, pipeline, groups: tuple[int, int, int], push: bytes = b"") -> None:
        pool = self.commands.sections
        if pool:
            pool.begin(self.cmd, label)
        pipeline.record(self.cmd, groups, push)
        if pool:
            pool.end(self.cmd)
        compute_barrier(self.commands.device, self.cmd)
