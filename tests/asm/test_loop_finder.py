"""The loop finder and spill detector of edgec/asm.py on hand-written assembly in LLVM's three
syntaxes (x86 AT&T, AArch64, ARMv7), plus Intel's: nesting, forward branches, comments, two
functions in one file, and spills through a register set from sp."""

from __future__ import annotations

import pytest

from edgec.asm import function_body, innermost_loops, loops, stack_stores

X86 = """\
	.text
	.globl	k0                              # -- Begin function k0
k0:                                     # @k0
	pushq	%rbx
	testq	%rdi, %rdi
	je	.LBB0_5
.LBB0_1:                                # =>This Loop Header: Depth=1
	xorl	%eax, %eax
.LBB0_2:                                #   Parent Loop BB0_1 Depth=1
	vbroadcastss	(%rsi,%rax,4), %ymm2
	vfmadd231ps	(%rdx), %ymm2, %ymm0
	vmovups	%ymm1, 32(%rsp)                 # 32-byte Spill
	vmovups	32(%rsp), %ymm1                 # 32-byte Reload
	cmpq	%rax, 8(%rsp)
	incq	%rax
	jne	.LBB0_2
# %bb.3:
	vmovups	%ymm0, (%rdi)
	decq	%rcx
	jne	.LBB0_1
.LBB0_5:
	popq	%rbx
	retq
.Lfunc_end0:
	.size	k0, .Lfunc_end0-k0
	.globl	"k1.task"
"k1.task":
.LBB1_1:
	vaddps	%ymm0, %ymm1, %ymm1
	decq	%rcx
	jne	.LBB1_1
	retq
.Lfunc_end1:
"""

AARCH64 = """\
k0:                                     // @k0
	stp	x29, x30, [sp, #-16]!
	add	x8, sp, #32
.LBB0_1:                                // =>This Inner Loop Header: Depth=1
	ld1r	{ v25.4s }, [x3], #4
	fmla	v26.4s, v23.4s, v25.4s
	str	q26, [sp, #1440]
	str	q1, [x8]
	stp	q2, q3, [x9, #32]
	ldr	q26, [sp, #1440]
	subs	x13, x13, #1
	b.ne	.LBB0_1
	mov	x8, x1
.LBB0_2:
	fmla	v0.4s, v1.4s, v2.s[0]
	st1	{ v0.4s }, [x8], #16
	cbnz	x2, .LBB0_2
	ldp	x29, x30, [sp], #16
	ret
.Lfunc_end0:
"""

ARMV7 = """\
k0:                                     @ @k0
	push	{r4, r5, r11, lr}
	sub	sp, sp, #48
.LBB0_6:                                @ =>This Inner Loop Header: Depth=1
	add	r0, sp, #1000
	vld1.32	{d6, d7}, [r2]!
	add	r0, r0, #2048
	vldmia	r0, {d28, d29}
	vmla.f32	q14, q4, q3
	vstmia	r0, {d28, d29}
	vmla.f32	q9, q4, q3
	vst1.32	{d0, d1}, [r2:128]!
	str	r4, [sp, #12]
	ldr	r0, [r1]
	vstmia	r0, {d4, d5}
	cmp	r6, #768
	bne	.LBB0_6
	add	sp, sp, #48
	pop	{r4, r5, r11, pc}
.Lfunc_end0:
"""

INTEL = """\
k0:
.LBB0_1:
	vmovups	ymmword ptr [rsp + 32], ymm1
	vmovups	ymm1, ymmword ptr [rsp + 32]
	vfmadd231ps	ymm0, ymm2, ymmword ptr [rdx]
	dec	rcx
	jne	.LBB0_1
	ret
"""


def test_nested_loops_and_the_innermost() -> None:
    body = function_body(X86, "k0")
    assert [lp.label for lp in loops(body)] == [".LBB0_2", ".LBB0_1"]  # je .LBB0_5 jumps forward
    [inner] = innermost_loops(X86, "k0")
    assert inner.label == ".LBB0_2" and inner.count(r"vfmadd\d+ps .*%ymm") == 1
    assert inner.instructions()[-1] == "jne .LBB0_2"
    assert all("Spill" not in s and "#" not in s for s in inner.instructions())


def test_functions_are_kept_apart() -> None:
    assert function_body(X86, "k0")[-1].startswith("\tretq")
    [lp] = innermost_loops(X86, "k1.task")  # a quoted symbol, its own labels only
    assert lp.label == ".LBB1_1" and lp.count("vaddps") == 1
    with pytest.raises(KeyError):
        function_body(X86, "k2")


def test_x86_stack_stores() -> None:
    [inner] = innermost_loops(X86, "k0")
    assert stack_stores(inner, "x86_64") == ["vmovups %ymm1, 32(%rsp)"]  # not the reload, not cmp
    [lp] = innermost_loops(INTEL, "k0")
    assert stack_stores(lp, "x86_64") == ["vmovups ymmword ptr [rsp + 32], ymm1"]


def test_aarch64_loops_and_stack_stores() -> None:
    first, second = innermost_loops(AARCH64, "k0")
    assert (first.label, second.label) == (".LBB0_1", ".LBB0_2")  # b.ne and cbnz latches
    assert first.count(r"fmla v\d+\.4s") == 1 and second.count(r"fmla v\d+\.4s") == 1
    # x8 was set from sp before the loop; x9 was not; after `mov x8, x1` x8 is no stack address
    assert stack_stores(first, "aarch64") == ["str q26, [sp, #1440]", "str q1, [x8]"]
    assert stack_stores(second, "aarch64") == []


def test_armv7_loop_and_stack_stores() -> None:
    [lp] = innermost_loops(ARMV7, "k0")
    assert lp.label == ".LBB0_6" and lp.count(r"vmla\.f32 q\d+") == 2
    # through r0 = sp + 3048 (a reload through r0 leaves it a stack address), and str to [sp];
    # not vst1 through r2, not r0 once reloaded
    assert stack_stores(lp, "armv7") == ["vstmia r0, {d28, d29}", "str r4, [sp, #12]"]


def test_a_loop_with_two_latches_is_one_loop() -> None:
    asm = "k0:\n.LBB0_1:\n\tvaddps %ymm0, %ymm1, %ymm1\n\tjne .LBB0_1\n\tvmulps %ymm0, %ymm1, %ymm1\n" \
          "\tjl .LBB0_1\n\tretq\n"
    [lp] = innermost_loops(asm, "k0")
    assert (lp.label, lp.count("vaddps"), lp.count("vmulps")) == (".LBB0_1", 1, 1)
