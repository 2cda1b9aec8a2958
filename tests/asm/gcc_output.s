# Output of riscv64-unknown-elf-gcc 12.2.0 -S -O2 -march=rv32ima_zicsr_zifencei -mabi=ilp32
# -mno-relax -fno-pic on a small C file (linked lists, switch tables, strings, 64-bit
# multiply): compiler output must assemble as GNU as assembles it.
	.file	"prog.c"
	.option nopic
	.option norelax
	.attribute arch, "rv32i2p1_m2p0_a2p1_zicsr2p0_zifencei2p0"
	.attribute unaligned_access, 0
	.attribute stack_align, 16
	.text
	.align	2
	.globl	sum
	.type	sum, @function
sum:
	ble	a1,zero,.L4
	slli	a1,a1,2
	mv	a3,a0
	add	a2,a0,a1
	li	a0,0
.L3:
	lw	a4,0(a3)
	addi	a3,a3,4
	slli	a5,a4,1
	add	a5,a5,a4
	srai	a4,a4,2
	sub	a5,a5,a4
	add	a0,a0,a5
	bne	a2,a3,.L3
	ret
.L4:
	li	a0,0
	ret
	.size	sum, .-sum
	.align	2
	.globl	mul64
	.type	mul64, @function
mul64:
	mul	a3,a3,a0
	mul	a1,a1,a2
	mulhu	a5,a0,a2
	add	a1,a1,a3
	mul	a0,a0,a2
	add	a1,a1,a5
	ret
	.size	mul64, .-mul64
	.align	2
	.globl	divide
	.type	divide, @function
divide:
	beq	a1,zero,.L10
	div	a5,a0,a1
	rem	a0,a0,a1
	add	a0,a5,a0
	ret
.L10:
	li	a0,-1
	ret
	.size	divide, .-divide
	.align	2
	.globl	link
	.type	link, @function
link:
	lui	a6,%hi(.LANCHOR0)
	ble	a0,zero,.L19
	addi	a7,a6,%lo(.LANCHOR0)
	addi	a4,a7,8
	li	a5,0
	li	a1,8
	j	.L14
.L20:
	sw	a4,-4(a4)
	addi	a4,a4,8
	beq	a5,a1,.L19
.L14:
	mul	a3,a5,a5
	mv	a2,a5
	addi	a5,a5,1
	sw	a3,-8(a4)
	bne	a5,a0,.L20
	slli	a2,a2,3
	add	a7,a7,a2
	sw	zero,4(a7)
.L19:
	addi	a0,a6,%lo(.LANCHOR0)
	ret
	.size	link, .-link
	.align	2
	.globl	puts_
	.type	puts_, @function
puts_:
	lui	a5,%hi(.LANCHOR1)
	addi	a5,a5,%lo(.LANCHOR1)
	li	a4,104
	li	a3,268435456
.L22:
	sw	a4,0(a3)
	lbu	a4,1(a5)
	addi	a5,a5,1
	bne	a4,zero,.L22
	ret
	.size	puts_, .-puts_
	.align	2
	.globl	classify
	.type	classify, @function
classify:
	li	a5,5
	bgtu	a0,a5,.L25
	lui	a5,%hi(.LANCHOR1)
	slli	a0,a0,2
	addi	a5,a5,%lo(.LANCHOR1)
	add	a5,a5,a0
	lw	a0,16(a5)
	ret
.L25:
	li	a5,100
	ble	a0,a5,.L27
	li	a0,1
	ret
.L27:
	li	a0,-1
	ret
	.size	classify, .-classify
	.align	2
	.globl	bits
	.type	bits, @function
bits:
	lui	a5,%hi(counter)
	lw	a4,%lo(counter)(a5)
	li	a5,-16711680
	addi	a5,a5,-256
	slli	a3,a0,3
	and	a5,a0,a5
	or	a5,a5,a3
	seqz	a4,a4
	or	a5,a5,a4
	srli	a0,a0,29
	or	a0,a5,a0
	ret
	.size	bits, .-bits
	.globl	counter
	.globl	uart
	.section	.rodata
	.align	2
	.set	.LANCHOR1,. + 0
	.type	greeting, @object
	.size	greeting, 14
greeting:
	.string	"hello, world\n"
	.zero	2
	.type	CSWTCH.13, @object
	.size	CSWTCH.13, 24
CSWTCH.13:
	.word	10
	.word	20
	.word	35
	.word	47
	.word	51
	.word	66
	.bss
	.align	2
	.set	.LANCHOR0,. + 0
	.type	nodes, @object
	.size	nodes, 64
nodes:
	.zero	64
	.section	.sdata,"aw"
	.align	2
	.type	counter, @object
	.size	counter, 4
counter:
	.word	5
	.section	.srodata,"a"
	.align	2
	.type	uart, @object
	.size	uart, 4
uart:
	.word	268435456
	.ident	"GCC: (12.2.0-14+deb12u1+11+b2) 12.2.0"
