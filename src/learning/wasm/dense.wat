;; One dense layer with SIMD: out[o] = act(b[o] + sum_i w[o*n + i] * x[i]) for o < m.
;; w is row-major by output (the transpose of the usual layout), n is a multiple of 8, all f32.
;; Two f32x4 accumulators per row: lanes and the two partial sums are added in a fixed order, so
;; the result is the same on every machine (simd128 has no fused multiply-add).
;;
;; dense_batch runs the same layer for nb inputs (input k at x + k*xs bytes, its output at
;; out + k*os bytes), two rows by two inputs at a time: each vector of weights loaded serves two
;; inputs and each vector of inputs two rows, and the eight independent accumulators keep the
;; SIMD units busy where the two of one row and one input wait on each other. Every (row, input)
;; pair still has its own two accumulators, filled in the same column order and reduced as above,
;; so each output is bit-identical to what dense gives for that input alone (nb = 1 included).
(module
  (memory (export "memory") 1)
  (func (export "dense")
    (param $w i32) (param $b i32) (param $x i32) (param $out i32)
    (param $n i32) (param $m i32) (param $relu i32)
    (local $o i32) (local $i i32) (local $row i32) (local $xp i32)
    (local $a0 v128) (local $a1 v128) (local $s f32)
    (local.set $o (i32.const 0))
    (local.set $row (local.get $w))
    (block $rows_done
      (loop $rows
        (br_if $rows_done (i32.ge_u (local.get $o) (local.get $m)))
        (local.set $a0 (v128.const f32x4 0 0 0 0))
        (local.set $a1 (v128.const f32x4 0 0 0 0))
        (local.set $i (i32.const 0))
        (block $cols_done
          (loop $cols
            (br_if $cols_done (i32.ge_u (local.get $i) (local.get $n)))
            (local.set $xp (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2))))
            (local.set $a0
              (f32x4.add (local.get $a0)
                (f32x4.mul
                  (v128.load (i32.add (local.get $row) (i32.shl (local.get $i) (i32.const 2))))
                  (v128.load (local.get $xp)))))
            (local.set $a1
              (f32x4.add (local.get $a1)
                (f32x4.mul
                  (v128.load offset=16 (i32.add (local.get $row) (i32.shl (local.get $i) (i32.const 2))))
                  (v128.load offset=16 (local.get $xp)))))
            (local.set $i (i32.add (local.get $i) (i32.const 8)))
            (br $cols)))
        (local.set $a0 (f32x4.add (local.get $a0) (local.get $a1)))
        (local.set $s
          (f32.add
            (f32.load (i32.add (local.get $b) (i32.shl (local.get $o) (i32.const 2))))
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $a0)) (f32x4.extract_lane 1 (local.get $a0)))
              (f32.add (f32x4.extract_lane 2 (local.get $a0)) (f32x4.extract_lane 3 (local.get $a0))))))
        (if (i32.and (local.get $relu) (f32.lt (local.get $s) (f32.const 0)))
          (then (local.set $s (f32.const 0))))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $o) (i32.const 2))) (local.get $s))
        (local.set $row (i32.add (local.get $row) (i32.shl (local.get $n) (i32.const 2))))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (br $rows))))

  (func (export "dense_batch")
    (param $w i32) (param $b i32) (param $x i32) (param $out i32)
    (param $n i32) (param $m i32) (param $relu i32)
    (param $nb i32) (param $xs i32) (param $os i32)
    (local $o i32) (local $i i32) (local $k i32) (local $row i32) (local $row1 i32) (local $off i32)
    (local $bias0 f32) (local $bias1 f32) (local $s f32)
    (local $xp0 i32) (local $xp1 i32)
    (local $w0a v128) (local $w0b v128) (local $w1a v128) (local $w1b v128)
    (local $x0a v128) (local $x0b v128) (local $x1a v128) (local $x1b v128)
    (local $a00a v128) (local $a00b v128) (local $a01a v128) (local $a01b v128) (local $a10a v128) (local $a10b v128) (local $a11a v128) (local $a11b v128)
    (local.set $o (i32.const 0))
    (local.set $row (local.get $w))
    ;; rows two at a time
    (block $pairs_done
      (loop $pairs
        (br_if $pairs_done (i32.gt_u (i32.add (local.get $o) (i32.const 2)) (local.get $m)))
        (local.set $row1 (i32.add (local.get $row) (i32.shl (local.get $n) (i32.const 2))))
        (local.set $bias0 (f32.load (i32.add (local.get $b) (i32.shl (local.get $o) (i32.const 2)))))
        (local.set $bias1 (f32.load offset=4 (i32.add (local.get $b) (i32.shl (local.get $o) (i32.const 2)))))
        (local.set $k (i32.const 0))
        ;; inputs two at a time
        (block $k2_done
          (loop $k2
            (br_if $k2_done (i32.gt_u (i32.add (local.get $k) (i32.const 2)) (local.get $nb)))
            (local.set $xp0 (i32.add (local.get $x) (i32.mul (i32.add (local.get $k) (i32.const 0)) (local.get $xs))))
            (local.set $xp1 (i32.add (local.get $x) (i32.mul (i32.add (local.get $k) (i32.const 1)) (local.get $xs))))
            (local.set $a00a (v128.const f32x4 0 0 0 0))
            (local.set $a00b (v128.const f32x4 0 0 0 0))
            (local.set $a01a (v128.const f32x4 0 0 0 0))
            (local.set $a01b (v128.const f32x4 0 0 0 0))
            (local.set $a10a (v128.const f32x4 0 0 0 0))
            (local.set $a10b (v128.const f32x4 0 0 0 0))
            (local.set $a11a (v128.const f32x4 0 0 0 0))
            (local.set $a11b (v128.const f32x4 0 0 0 0))
            (local.set $i (i32.const 0))
            (block $cols_done
              (loop $cols
                (br_if $cols_done (i32.ge_u (local.get $i) (local.get $n)))
                (local.set $off (i32.shl (local.get $i) (i32.const 2)))
                (local.set $w0a (v128.load (i32.add (local.get $row) (local.get $off))))
                (local.set $w0b (v128.load offset=16 (i32.add (local.get $row) (local.get $off))))
                (local.set $w1a (v128.load (i32.add (local.get $row1) (local.get $off))))
                (local.set $w1b (v128.load offset=16 (i32.add (local.get $row1) (local.get $off))))
                (local.set $x0a (v128.load (i32.add (local.get $xp0) (local.get $off))))
                (local.set $x0b (v128.load offset=16 (i32.add (local.get $xp0) (local.get $off))))
                (local.set $x1a (v128.load (i32.add (local.get $xp1) (local.get $off))))
                (local.set $x1b (v128.load offset=16 (i32.add (local.get $xp1) (local.get $off))))
                (local.set $a00a (f32x4.add (local.get $a00a) (f32x4.mul (local.get $w0a) (local.get $x0a))))
                (local.set $a00b (f32x4.add (local.get $a00b) (f32x4.mul (local.get $w0b) (local.get $x0b))))
                (local.set $a01a (f32x4.add (local.get $a01a) (f32x4.mul (local.get $w0a) (local.get $x1a))))
                (local.set $a01b (f32x4.add (local.get $a01b) (f32x4.mul (local.get $w0b) (local.get $x1b))))
                (local.set $a10a (f32x4.add (local.get $a10a) (f32x4.mul (local.get $w1a) (local.get $x0a))))
                (local.set $a10b (f32x4.add (local.get $a10b) (f32x4.mul (local.get $w1b) (local.get $x0b))))
                (local.set $a11a (f32x4.add (local.get $a11a) (f32x4.mul (local.get $w1a) (local.get $x1a))))
                (local.set $a11b (f32x4.add (local.get $a11b) (f32x4.mul (local.get $w1b) (local.get $x1b))))
                (local.set $i (i32.add (local.get $i) (i32.const 8)))
                (br $cols)))
            (local.set $a00a (f32x4.add (local.get $a00a) (local.get $a00b)))
            (local.set $s
              (f32.add (local.get $bias0)
                (f32.add
                  (f32.add (f32x4.extract_lane 0 (local.get $a00a)) (f32x4.extract_lane 1 (local.get $a00a)))
                  (f32.add (f32x4.extract_lane 2 (local.get $a00a)) (f32x4.extract_lane 3 (local.get $a00a))))))
            (if (i32.and (local.get $relu) (f32.lt (local.get $s) (f32.const 0)))
              (then (local.set $s (f32.const 0))))
            (f32.store offset=0
              (i32.add (i32.add (local.get $out) (i32.mul (i32.add (local.get $k) (i32.const 0)) (local.get $os))) (i32.shl (local.get $o) (i32.const 2)))
              (local.get $s))
            (local.set $a01a (f32x4.add (local.get $a01a) (local.get $a01b)))
            (local.set $s
              (f32.add (local.get $bias0)
                (f32.add
                  (f32.add (f32x4.extract_lane 0 (local.get $a01a)) (f32x4.extract_lane 1 (local.get $a01a)))
                  (f32.add (f32x4.extract_lane 2 (local.get $a01a)) (f32x4.extract_lane 3 (local.get $a01a))))))
            (if (i32.and (local.get $relu) (f32.lt (local.get $s) (f32.const 0)))
              (then (local.set $s (f32.const 0))))
            (f32.store offset=0
              (i32.add (i32.add (local.get $out) (i32.mul (i32.add (local.get $k) (i32.const 1)) (local.get $os))) (i32.shl (local.get $o) (i32.const 2)))
              (local.get $s))
            (local.set $a10a (f32x4.add (local.get $a10a) (local.get $a10b)))
            (local.set $s
              (f32.add (local.get $bias1)
                (f32.add
                  (f32.add (f32x4.extract_lane 0 (local.get $a10a)) (f32x4.extract_lane 1 (local.get $a10a)))
                  (f32.add (f32x4.extract_lane 2 (local.get $a10a)) (f32x4.extract_lane 3 (local.get $a10a))))))
            (if (i32.and (local.get $relu) (f32.lt (local.get $s) (f32.const 0)))
              (then (local.set $s (f32.const 0))))
            (f32.store offset=4
              (i32.add (i32.add (local.get $out) (i32.mul (i32.add (local.get $k) (i32.const 0)) (local.get $os))) (i32.shl (local.get $o) (i32.const 2)))
              (local.get $s))
            (local.set $a11a (f32x4.add (local.get $a11a) (local.get $a11b)))
            (local.set $s
              (f32.add (local.get $bias1)
                (f32.add
                  (f32.add (f32x4.extract_lane 0 (local.get $a11a)) (f32x4.extract_lane 1 (local.get $a11a)))
                  (f32.add (f32x4.extract_lane 2 (local.get $a11a)) (f32x4.extract_lane 3 (local.get $a11a))))))
            (if (i32.and (local.get $relu) (f32.lt (local.get $s) (f32.const 0)))
              (then (local.set $s (f32.const 0))))
            (f32.store offset=4
              (i32.add (i32.add (local.get $out) (i32.mul (i32.add (local.get $k) (i32.const 1)) (local.get $os))) (i32.shl (local.get $o) (i32.const 2)))
              (local.get $s))
            (local.set $k (i32.add (local.get $k) (i32.const 2)))
            (br $k2)))
        ;; the last input of an odd count
        (if (i32.lt_u (local.get $k) (local.get $nb))
          (then
            (local.set $xp0 (i32.add (local.get $x) (i32.mul (i32.add (local.get $k) (i32.const 0)) (local.get $xs))))
            (local.set $a00a (v128.const f32x4 0 0 0 0))
            (local.set $a00b (v128.const f32x4 0 0 0 0))
            (local.set $a10a (v128.const f32x4 0 0 0 0))
            (local.set $a10b (v128.const f32x4 0 0 0 0))
            (local.set $i (i32.const 0))
            (block $cols_done
              (loop $cols
                (br_if $cols_done (i32.ge_u (local.get $i) (local.get $n)))
                (local.set $off (i32.shl (local.get $i) (i32.const 2)))
                (local.set $w0a (v128.load (i32.add (local.get $row) (local.get $off))))
                (local.set $w0b (v128.load offset=16 (i32.add (local.get $row) (local.get $off))))
                (local.set $w1a (v128.load (i32.add (local.get $row1) (local.get $off))))
                (local.set $w1b (v128.load offset=16 (i32.add (local.get $row1) (local.get $off))))
                (local.set $x0a (v128.load (i32.add (local.get $xp0) (local.get $off))))
                (local.set $x0b (v128.load offset=16 (i32.add (local.get $xp0) (local.get $off))))
                (local.set $a00a (f32x4.add (local.get $a00a) (f32x4.mul (local.get $w0a) (local.get $x0a))))
                (local.set $a00b (f32x4.add (local.get $a00b) (f32x4.mul (local.get $w0b) (local.get $x0b))))
                (local.set $a10a (f32x4.add (local.get $a10a) (f32x4.mul (local.get $w1a) (local.get $x0a))))
                (local.set $a10b (f32x4.add (local.get $a10b) (f32x4.mul (local.get $w1b) (local.get $x0b))))
                (local.set $i (i32.add (local.get $i) (i32.const 8)))
                (br $cols)))
            (local.set $a00a (f32x4.add (local.get $a00a) (local.get $a00b)))
            (local.set $s
              (f32.add (local.get $bias0)
                (f32.add
                  (f32.add (f32x4.extract_lane 0 (local.get $a00a)) (f32x4.extract_lane 1 (local.get $a00a)))
                  (f32.add (f32x4.extract_lane 2 (local.get $a00a)) (f32x4.extract_lane 3 (local.get $a00a))))))
            (if (i32.and (local.get $relu) (f32.lt (local.get $s) (f32.const 0)))
              (then (local.set $s (f32.const 0))))
            (f32.store offset=0
              (i32.add (i32.add (local.get $out) (i32.mul (i32.add (local.get $k) (i32.const 0)) (local.get $os))) (i32.shl (local.get $o) (i32.const 2)))
              (local.get $s))
            (local.set $a10a (f32x4.add (local.get $a10a) (local.get $a10b)))
            (local.set $s
              (f32.add (local.get $bias1)
                (f32.add
                  (f32.add (f32x4.extract_lane 0 (local.get $a10a)) (f32x4.extract_lane 1 (local.get $a10a)))
                  (f32.add (f32x4.extract_lane 2 (local.get $a10a)) (f32x4.extract_lane 3 (local.get $a10a))))))
            (if (i32.and (local.get $relu) (f32.lt (local.get $s) (f32.const 0)))
              (then (local.set $s (f32.const 0))))
            (f32.store offset=4
              (i32.add (i32.add (local.get $out) (i32.mul (i32.add (local.get $k) (i32.const 0)) (local.get $os))) (i32.shl (local.get $o) (i32.const 2)))
              (local.get $s))
          ))
        (local.set $row (i32.add (local.get $row1) (i32.shl (local.get $n) (i32.const 2))))
        (local.set $o (i32.add (local.get $o) (i32.const 2)))
        (br $pairs)))
    ;; the last row of an odd count, one input at a time
    (if (i32.lt_u (local.get $o) (local.get $m))
      (then
        (local.set $bias0 (f32.load (i32.add (local.get $b) (i32.shl (local.get $o) (i32.const 2)))))
        (local.set $k (i32.const 0))
        (block $k1_done
          (loop $k1
            (br_if $k1_done (i32.ge_u (local.get $k) (local.get $nb)))
            (local.set $xp0 (i32.add (local.get $x) (i32.mul (i32.add (local.get $k) (i32.const 0)) (local.get $xs))))
            (local.set $a00a (v128.const f32x4 0 0 0 0))
            (local.set $a00b (v128.const f32x4 0 0 0 0))
            (local.set $i (i32.const 0))
            (block $cols_done
              (loop $cols
                (br_if $cols_done (i32.ge_u (local.get $i) (local.get $n)))
                (local.set $off (i32.shl (local.get $i) (i32.const 2)))
                (local.set $w0a (v128.load (i32.add (local.get $row) (local.get $off))))
                (local.set $w0b (v128.load offset=16 (i32.add (local.get $row) (local.get $off))))
                (local.set $x0a (v128.load (i32.add (local.get $xp0) (local.get $off))))
                (local.set $x0b (v128.load offset=16 (i32.add (local.get $xp0) (local.get $off))))
                (local.set $a00a (f32x4.add (local.get $a00a) (f32x4.mul (local.get $w0a) (local.get $x0a))))
                (local.set $a00b (f32x4.add (local.get $a00b) (f32x4.mul (local.get $w0b) (local.get $x0b))))
                (local.set $i (i32.add (local.get $i) (i32.const 8)))
                (br $cols)))
            (local.set $a00a (f32x4.add (local.get $a00a) (local.get $a00b)))
            (local.set $s
              (f32.add (local.get $bias0)
                (f32.add
                  (f32.add (f32x4.extract_lane 0 (local.get $a00a)) (f32x4.extract_lane 1 (local.get $a00a)))
                  (f32.add (f32x4.extract_lane 2 (local.get $a00a)) (f32x4.extract_lane 3 (local.get $a00a))))))
            (if (i32.and (local.get $relu) (f32.lt (local.get $s) (f32.const 0)))
              (then (local.set $s (f32.const 0))))
            (f32.store offset=0
              (i32.add (i32.add (local.get $out) (i32.mul (i32.add (local.get $k) (i32.const 0)) (local.get $os))) (i32.shl (local.get $o) (i32.const 2)))
              (local.get $s))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $k1)))))
  )
)
